"""Model Garden integration: the task, experiments, the run driver, its checks, preemption, actions and TensorBoard."""
