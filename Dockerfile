# continust: one image for the web server, the Celery worker and beat (see compose.yaml).
FROM python:3.11-slim-bookworm

# Pango and HarfBuzz for WeasyPrint (the audit report PDFs).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY . .

ENV PATH=/app/.venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=continust.settings \
    CONTINUST_VAR_DIR=/var/lib/continust \
    CONTINUST_STATIC_ROOT=/app/staticfiles \
    PYTHONUNBUFFERED=1
# The hashed, compressed static files WhiteNoise serves; collected with a throwaway key
# (collectstatic signs nothing).
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --no-input -v0

RUN useradd --system --home /var/lib/continust continust \
    && mkdir -p /var/lib/continust && chown continust /var/lib/continust
USER continust
EXPOSE 8000
CMD ["gunicorn", "continust.wsgi", "--bind", "0.0.0.0:8000", "--worker-class", "gthread", "--workers", "3", "--threads", "16", "--timeout", "120"]
