"""Response models and behavioural clusters: simulated training data, the models, their registry."""

from leadx.scoring.absent_imports import refuse_absent

# scikit-learn's spline features look for pandas at every transform; not installed, it is refused
# at once instead of searched for on every sys.path entry each time (leadx/scoring/absent_imports.py).
refuse_absent("pandas")
