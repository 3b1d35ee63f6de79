# The lab's image: the Streamlit dashboard (default command) and `python -m engine worker` (compose's worker).
FROM python:3.11-slim

# The app runs as a non-root user to whom /app is read-only, so tool caches go to /tmp.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LAB_DATA_DIR=/data \
    RUFF_CACHE_DIR=/tmp/ruff-cache \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# A named volume mounted on /data starts as a copy of this directory, so it is writable by `lab`.
RUN useradd --create-home lab && mkdir -p /data && chown lab /data
USER lab

EXPOSE 8501
CMD ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address", "0.0.0.0", "--server.headless", "true"]
