"""The review list: possible duplicates and transfer claims (PROTOCOL.md §9)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path

from sync import protocol as p
from sync.server import reviews
from sync.server.routes.deps import ERRORS, Db, Svc, User

router = APIRouter(tags=["reviews"], responses=ERRORS)


@router.get("/v1/reviews", response_model=p.ReviewList)
def list_reviews(
    user: User, engine: Db, state: Literal["open", "by_worker", "all"] = "open"
) -> dict[str, Any]:
    """Possible duplicates for supervisors and admins (``by_worker``: those a worker closed
    "different", which a supervisor may still decide "same")."""
    return {"reviews": reviews.list_reviews(engine, user, state)}


@router.post("/v1/reviews/{review_id}", response_model=p.ReviewOutcome)
def decide_review(
    user: User,
    service: Svc,
    body: p.ReviewDecision,
    review_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> dict[str, Any]:
    """Decide "same" (merge, alias) or "different"; writes an audit row."""
    return reviews.decide(service.engine, service.formset, user, review_id, body.decision)
