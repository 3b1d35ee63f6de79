"""Panel renderers used by pages. They read through engine.Lab and never touch the database or MLflow."""
