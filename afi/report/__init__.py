"""Answers people look at: run comparisons, metric curves and the HTML experiment report."""
