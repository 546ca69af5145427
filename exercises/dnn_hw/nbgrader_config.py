"""Settings for `nbgrader validate` in this folder; nbgrader reads this file when you run it here.

They make validating behave like grading: each cell may run for 120 seconds, and the experiment
notebooks 05 and 06 are checked from the files they saved (mnist_results.json, fashion_results.json,
fashion_model.npz, mnist_model_sigmoid.npz, mnist_model_relu.npz, mnist_model_tanh.npz) instead of
training again. To check all six notebooks, including whether a test cell was deleted or changed,
run `python -m dnn_course.check` here.
"""

from dnn_course.check import configure_validation

configure_validation(get_config())  # noqa: F821 - get_config is provided by nbgrader
