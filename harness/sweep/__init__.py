"""Running a sweep: the runner, the scheduler, one variant's execution, the Ray executor, the summary."""
