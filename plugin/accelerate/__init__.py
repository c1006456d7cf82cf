"""The Accelerate integration (glue over wse.device and wse.optim); not built yet."""
