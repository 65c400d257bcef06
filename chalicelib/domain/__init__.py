"""The pure domain: money, orders with their escrow, disputes and their one transition table.

Nothing here imports boto3, Chalice or reads the environment; time is always passed in.
"""
