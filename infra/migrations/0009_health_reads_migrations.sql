-- The readiness check (GET /health/ready) connects with each service's own role and checks that
-- the database has the migration its build expects: each role may read infra/migrate's record
-- of applied migrations, and nothing else of the public schema.
GRANT SELECT ON public.schema_migrations TO stock_service, orders_service, payment_service;
