# The migration image of the Kubernetes Job (infra/k8s/migrate-job.yaml): psql plus
# infra/migrate, its migrations and function files. Build it with the app, from the repository:
#   docker build -f infra/migrate.Dockerfile -t ghcr.io/<you>/wasm-marketplace-migrate:0.1.0 infra
# (compose needs no image: its `migrate` service runs the same scripts from a mounted infra/).
FROM postgres:15
COPY migrate migrate-deployed /infra/
COPY migrations /infra/migrations
COPY functions /infra/functions
USER postgres
ENTRYPOINT ["/infra/migrate-deployed"]
