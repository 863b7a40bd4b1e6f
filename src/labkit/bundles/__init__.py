"""Archives that move a lab between people: a candidate's submission (and, later, bundles and reviews)."""
