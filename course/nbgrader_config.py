"""nbgrader's configuration for the tdsl course (course/ is the course directory)."""

c = get_config()  # noqa: F821  (nbgrader provides get_config)

c.CourseDirectory.course_id = "tdsl"
c.CourseDirectory.root = "."
# the gradebook lives beside the notebooks (ignored by git)
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# the autograder builds kernels (gcc): allow a slow cell on a busy machine
c.ExecutePreprocessor.timeout = 600
