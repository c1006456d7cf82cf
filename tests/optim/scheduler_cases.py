"""The scheduler configurations whose values are checked against stored golden values.

Each case names a scheduler class of ``wse.optim.lr_scheduler`` or
``wse.optim.weight_decay_scheduler`` (the same names as in cerebras-pytorch) and its
arguments; composite schedulers nest child specs. ``groups`` describes the optimizer's
param groups (their tags), so that tag targeting is covered too.
"""

STEPS = 2100

CASES = {
    # -- learning rate ------------------------------------------------------------------
    "constant": {"family": "lr", "cls": "ConstantLR", "kwargs": {"learning_rate": 0.02}},
    "polynomial_linear": {"family": "lr", "cls": "PolynomialLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.001, "total_iters": 1500}},
    "polynomial_power2": {"family": "lr", "cls": "PolynomialLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 1800, "power": 2.0}},
    "polynomial_power_half_rising": {"family": "lr", "cls": "PolynomialLR", "kwargs": {"initial_learning_rate": 0.0, "end_learning_rate": 0.05, "total_iters": 700, "power": 0.5}},
    "linear_warmup": {"family": "lr", "cls": "LinearLR", "kwargs": {"initial_learning_rate": 0.0, "end_learning_rate": 0.01, "total_iters": 250}},
    "exponential": {"family": "lr", "cls": "ExponentialLR", "kwargs": {"initial_learning_rate": 0.1, "total_iters": 300, "decay_rate": 0.5}},
    "exponential_staircase": {"family": "lr", "cls": "ExponentialLR", "kwargs": {"initial_learning_rate": 0.1, "total_iters": 300, "decay_rate": 0.8, "staircase": True}},
    "inverse_time": {"family": "lr", "cls": "InverseExponentialTimeDecayLR", "kwargs": {"initial_learning_rate": 0.1, "step_exponent": 1, "total_iters": 100, "decay_rate": 0.5}},
    "inverse_time_staircase_sq": {"family": "lr", "cls": "InverseExponentialTimeDecayLR", "kwargs": {"initial_learning_rate": 0.05, "step_exponent": 2, "total_iters": 5000, "decay_rate": 0.1, "staircase": True}},
    "inverse_sqrt": {"family": "lr", "cls": "InverseSquareRootDecayLR", "kwargs": {"initial_learning_rate": 0.5, "scale": 2.0, "warmup_steps": 400}},
    "inverse_sqrt_defaults": {"family": "lr", "cls": "InverseSquareRootDecayLR", "kwargs": {}},
    "cosine_decay": {"family": "lr", "cls": "CosineDecayLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.001, "total_iters": 2000}},
    "cosine_decay_short": {"family": "lr", "cls": "CosineDecayLR", "kwargs": {"initial_learning_rate": 3e-4, "end_learning_rate": 3e-5, "total_iters": 333}},
    "piecewise_constant": {"family": "lr", "cls": "PiecewiseConstantLR", "kwargs": {"learning_rates": [0.1, 0.01, 0.001, 0.0001], "milestones": [500, 1000, 1900]}},
    "multistep": {"family": "lr", "cls": "MultiStepLR", "kwargs": {"initial_learning_rate": 0.1, "gamma": 0.3, "milestones": [300, 900, 1500]}},
    "step": {"family": "lr", "cls": "StepLR", "kwargs": {"initial_learning_rate": 0.1, "step_size": 250, "gamma": 0.7}},
    "cosine_annealing": {"family": "lr", "cls": "CosineAnnealingLR", "kwargs": {"initial_learning_rate": 0.1, "T_max": 800, "eta_min": 0.001}},
    "multiplicative": {"family": "lr", "cls": "MultiplicativeLR", "kwargs": {"initial_learning_rate": 0.1, "coefficient": 0.999}},
    "cyclic_triangular": {"family": "lr", "cls": "CyclicLR", "kwargs": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 200}},
    "cyclic_triangular2": {"family": "lr", "cls": "CyclicLR", "kwargs": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 150, "step_size_down": 250, "mode": "triangular2"}},
    "cyclic_exp_range": {"family": "lr", "cls": "CyclicLR", "kwargs": {"base_lr": 0.001, "max_lr": 0.1, "step_size_up": 300, "mode": "exp_range", "gamma": 0.999}},
    "one_cycle_cos": {"family": "lr", "cls": "OneCycleLR", "kwargs": {"initial_learning_rate": 0.004, "max_lr": 0.1, "total_steps": 2000}},
    "one_cycle_linear_three": {"family": "lr", "cls": "OneCycleLR", "kwargs": {"initial_learning_rate": 0.01, "max_lr": 0.2, "total_steps": 1800, "pct_start": 0.25, "final_div_factor": 100.0, "three_phase": True, "anneal_strategy": "linear"}},
    "sequential_warmup_cosine": {"family": "lr", "cls": "SequentialLR", "schedulers": [
        {"cls": "LinearLR", "kwargs": {"initial_learning_rate": 0.0, "end_learning_rate": 0.1, "total_iters": 200}},
        {"cls": "CosineDecayLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.001, "total_iters": 1600}},
    ], "kwargs": {"milestones": [200]}},
    "sequential_three": {"family": "lr", "cls": "SequentialLR", "schedulers": [
        {"cls": "ConstantLR", "kwargs": {"learning_rate": 0.01}},
        {"cls": "ExponentialLR", "kwargs": {"initial_learning_rate": 0.1, "total_iters": 100, "decay_rate": 0.9}},
        {"cls": "InverseSquareRootDecayLR", "kwargs": {"initial_learning_rate": 0.05, "scale": 1.0, "warmup_steps": 10}},
    ], "kwargs": {"milestones": [100, 700]}},
    "chained": {"family": "lr", "cls": "ChainedLR", "schedulers": [
        {"cls": "CosineDecayLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 2000}},
        {"cls": "StepLR", "kwargs": {"initial_learning_rate": 0.5, "step_size": 400, "gamma": 0.5}},
    ], "kwargs": {}},
    "tagged": {"family": "lr", "cls": "CosineDecayLR", "kwargs": {"initial_learning_rate": 0.1, "end_learning_rate": 0.0, "total_iters": 1000, "param_group_tags": "decay"},
               "groups": [["decay"], None, ["decay", "norm"]]},
    "tagged_untagged": {"family": "lr", "cls": "StepLR", "kwargs": {"initial_learning_rate": 0.1, "step_size": 300, "gamma": 0.5, "param_group_tags": [None]},
                        "groups": [["decay"], None]},
    # -- weight decay -------------------------------------------------------------------
    "wd_constant": {"family": "wd", "cls": "ConstantWD", "kwargs": {"val": 0.05}},
    "wd_polynomial": {"family": "wd", "cls": "PolynomialWD", "kwargs": {"initial_val": 0.1, "end_val": 0.01, "total_iters": 1500, "power": 3.0}},
    "wd_linear": {"family": "wd", "cls": "LinearWD", "kwargs": {"initial_val": 0.0, "end_val": 0.1, "total_iters": 1000}},
    "wd_exponential": {"family": "wd", "cls": "ExponentialWD", "kwargs": {"initial_val": 0.1, "total_iters": 500, "decay_rate": 0.3, "staircase": True}},
    "wd_inverse_time": {"family": "wd", "cls": "InverseExponentialTimeDecayWD", "kwargs": {"initial_val": 0.1, "step_exponent": 1, "total_iters": 300, "decay_rate": 2.0}},
    "wd_inverse_sqrt": {"family": "wd", "cls": "InverseSquareRootDecayWD", "kwargs": {"initial_val": 0.2, "scale": 0.5, "warmup_steps": 50}},
    "wd_cosine_decay": {"family": "wd", "cls": "CosineDecayWD", "kwargs": {"initial_val": 0.1, "end_val": 0.0, "total_iters": 1900}},
    "wd_piecewise": {"family": "wd", "cls": "PiecewiseConstantWD", "kwargs": {"vals": [0.0, 0.1, 0.05], "milestones": [100, 1200]}},
    "wd_multistep": {"family": "wd", "cls": "MultiStepWD", "kwargs": {"initial_val": 0.1, "gamma": 0.5, "milestones": [500, 1000]}},
    "wd_step": {"family": "wd", "cls": "StepWD", "kwargs": {"initial_val": 0.1, "step_size": 700, "gamma": 0.2}},
    "wd_cosine_annealing": {"family": "wd", "cls": "CosineAnnealingWD", "kwargs": {"initial_val": 0.1, "T_max": 1100, "eta_min": 0.01}},
    "wd_multiplicative": {"family": "wd", "cls": "MultiplicativeWD", "kwargs": {"initial_val": 0.1, "coefficient": 1.0005}},
    "wd_cyclic": {"family": "wd", "cls": "CyclicWD", "kwargs": {"base_val": 0.01, "max_val": 0.1, "step_size_up": 123, "mode": "triangular2"}},
    "wd_one_cycle": {"family": "wd", "cls": "OneCycleWD", "kwargs": {"initial_val": 0.01, "max_val": 0.1, "total_steps": 2100, "pct_start": 0.4}},
    "wd_sequential": {"family": "wd", "cls": "SequentialWD", "schedulers": [
        {"cls": "LinearWD", "kwargs": {"initial_val": 0.0, "end_val": 0.1, "total_iters": 300}},
        {"cls": "CosineDecayWD", "kwargs": {"initial_val": 0.1, "end_val": 0.01, "total_iters": 1500}},
    ], "kwargs": {"milestones": [300]}},
    "wd_chained": {"family": "wd", "cls": "ChainedWD", "schedulers": [
        {"cls": "LinearWD", "kwargs": {"initial_val": 0.1, "end_val": 0.0, "total_iters": 2000}},
        {"cls": "MultiStepWD", "kwargs": {"initial_val": 1.0, "gamma": 0.5, "milestones": [600, 1200]}},
    ], "kwargs": {}},
}
