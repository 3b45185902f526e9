"""The CUDA benchmark (run_cuda.py) and the schedules it shares with the tests (schedules.py)."""
