"""Response models and behavioural clusters: simulated training data, the models, their registry."""
