"""The API's routes, one module per resource (each an ``APIRouter``, its responses described by
the models in ``fhir_bridge.api._responses``): records (and the map preview), sync runs and
status, dead letters, conflicts, the change feed, handoffs, the subscription webhook, health
and metrics. The dashboard is its own module (``fhir_bridge.api._dashboard``)."""
