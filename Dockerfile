# One image for every leadx service; the Deployment chooses the module to run.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# Only what the services need at run time (requirements-runtime.lock): no test, lint or benchmark
# tools and no embedded broker; tests/unit/test_image_requirements.py checks the set.
COPY requirements-runtime.lock pyproject.toml ./
RUN pip install -r requirements-runtime.lock
COPY leadx ./leadx
COPY services ./services
RUN pip install --no-deps . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin leadx
USER 10001
EXPOSE 8000 8080 8081 50051
CMD ["python", "-m", "services.intake.main"]
