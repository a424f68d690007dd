"""Continuous archives (SDS trees, lists of miniSEED objects) read as station-day tasks."""
