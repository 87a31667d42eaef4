"""The record service: the one policy path for every read and write of entity records.

`records(entity)` (app/records/service.py) is what views, the API, import,
export, charts, pickers and jobs call; `scope` compiles row rules, `masking`
shows sensitive values, `validation` holds the one validator set, `values`
parses what people type.
"""

from app.records.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RecordError,
    RecordService,
    records,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "RecordError",
    "RecordService",
    "records",
]
