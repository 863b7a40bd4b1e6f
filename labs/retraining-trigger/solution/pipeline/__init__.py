"""The churn model's retraining loop: monitor -> event -> retrain flow -> registry -> serving."""
