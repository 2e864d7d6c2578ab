"""The scikit-learn estimator protocol without depending on scikit-learn at run time."""

from __future__ import annotations

import inspect


class ParamsMixin:
    """``get_params``/``set_params``/``__repr__`` from the keyword-only ``__init__`` signature,
    as scikit-learn's ``BaseEstimator`` provides them."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep: bool = True) -> dict:
        """Return the estimator's parameters as a dict (``deep`` is accepted for compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set parameters by name; returns self. Unknown names raise ``ValueError``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = [
            f"{p.name}={getattr(self, p.name)!r}"
            for p in sig.parameters.values()
            if p.name != "self" and getattr(self, p.name) != p.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so importing it here adds no run-time dependency.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=self._preserved_dtypes()),
            input_tags=InputTags(two_d_array=True, allow_nan=False),
        )

    def _preserved_dtypes(self) -> list[str]:
        return ["float64", "float32"]
