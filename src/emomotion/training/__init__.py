"""One training loop for every model family; each family brings only its loss (a train step)."""
