-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d).
-- POSTGRES_DB already created the lab's state database `lab`; MLflow's backend store gets its own database.
CREATE DATABASE mlflow;
