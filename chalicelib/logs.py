"""The one Logger of the service; modules use ``Logger(child=True)`` or this instance."""
from aws_lambda_powertools import Logger

logger = Logger(service="buyer-protection")
