# One image for web and workers. TORCH_INDEX selects the torch build: CPU by default; for GPU workers
# build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 (and a matching pin).
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DJANGO_SETTINGS_MODULE=neuronpedia.settings.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install --extra-index-url "$TORCH_INDEX" -r requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt
COPY . .
RUN pip install --no-deps --no-build-isolation -e .
RUN DJANGO_SECRET_KEY=build DJANGO_ALLOWED_HOSTS=x DATABASE_URL=postgres://x@x/x \
    python manage.py collectstatic --noinput
EXPOSE 3000
# ASGI: uvicorn workers under gunicorn (inference and streaming views wait on Redis without a thread)
CMD ["gunicorn", "neuronpedia.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:3000", \
     "--workers", "3", "--timeout", "300"]
