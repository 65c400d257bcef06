"""DynamoDB through PynamoDB: models (tables and indexes), mapping (aggregates <-> items),
pagination (cursors), transactions (staged writes, refusals classified), one repository per
aggregate, and the unit of work that commits them. No request path scans a table."""
from .models import DEFAULT_TABLES, Tables, create_tables, make_tables
from .repositories import DynamoOutbox
from .session import share_botocore_session
from .unit_of_work import DynamoUnitOfWork

__all__ = ["DEFAULT_TABLES", "DynamoOutbox", "DynamoUnitOfWork", "Tables", "create_tables", "make_tables",
           "share_botocore_session"]
