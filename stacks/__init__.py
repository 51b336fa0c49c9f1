"""Stack configuration: read and validated in one place, before anything is created."""
