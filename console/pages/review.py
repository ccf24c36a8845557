"""Human review: low-confidence inferences routed to a person. Not built yet (another issue adds it); the page
says so rather than pretending."""
from __future__ import annotations

from flask import Blueprint, render_template

from console.context import context

blueprint = Blueprint("review", __name__)


@blueprint.get("/review")
def index():
    return render_template("review.html", threshold=context().config.inference.confidence_threshold)
