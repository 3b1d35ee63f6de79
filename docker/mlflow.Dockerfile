# The MLflow tracking server of the full stack: PostgreSQL backend store, artifacts proxied to MinIO (S3).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# The same pins as requirements.txt: the server and the lab's client speak the same MLflow.
RUN pip install mlflow==3.17.2 psycopg2-binary==2.9.13 boto3==1.44.8 \
    && useradd --create-home mlflow

USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
