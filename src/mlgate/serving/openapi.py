"""OpenAPI descriptions of the routes that take raw bodies (so FastAPI cannot infer them).

The inference route reads its body itself, to keep validation to one pass on
the hot path; these schemas keep the published OpenAPI document complete anyway.
"""

from __future__ import annotations

from typing import Any

from mlgate.registry.signature import DATATYPES

__all__ = ["DEPLOY_OPENAPI", "FEEDBACK_OPENAPI", "INFER_OPENAPI"]

JSON = "application/json"

_TENSOR_SCHEMA = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
            "type": "string",
            "enum": list(DATATYPES),
        },
        "parameters": {"type": "object"},
        "data": {"type": "array", "description": "row-major, flat or nested"},
    },
}
INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {
                            "type": "object",
                            "description": "request attributes for rules and sticky splits",
                        },
                        "inputs": {"type": "array", "items": _TENSOR_SCHEMA},
                        "outputs": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                        },
                    },
                }
            }
        },
    },
    "responses": {
        "400": {"description": "malformed request, wrong datatype or shape, NaN"},
        "404": {"description": "unknown model, endpoint or version"},
        "413": {"description": "body too large"},
        "503": {"description": "overloaded: retry after Retry-After seconds"},
        "504": {"description": "the model did not answer in time and no fallback did"},
    },
}
FEEDBACK_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "request_id": {"type": "string"},
                        "label": {},
                        "reward": {"type": "number"},
                        "feedback": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}
DEPLOY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            JSON: {"schema": {"type": "object"}},
        },
    }
}
