"""Model + weights + split -> metrics: the evaluator, the metrics, and the figures."""
