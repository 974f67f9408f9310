// Package insforgetest prepares a pgtest database so that it looks like an InsForge database to
// the code under test: the roles anon, authenticated and project_admin (BYPASSRLS), InsForge's
// default grants on the public schema, and optionally the auth.jwt() claim helper.
//
// It follows InsForge's db-init.sql and migrations 036, 045 and 047 in shape, not in every detail:
// only what row-level-security code depends on is reproduced.
package insforgetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/insforge/integrations-operator/internal/testutil/pgtest"
)

// Role names InsForge creates.
const (
	RoleAnon          = "anon"
	RoleAuthenticated = "authenticated"
	RoleProjectAdmin  = "project_admin"
)

// Options choose which parts of InsForge to reproduce.
type Options struct {
	// AuthJWT creates the auth schema with auth.jwt(), as InsForge migration 036 does. Leave it
	// false to model an InsForge build older than that migration.
	AuthJWT bool
}

// rolesSQL creates the cluster-wide roles. Roles are shared by every database of the server and
// tests run in parallel, so the creation is serialised by an advisory lock and tolerates a role
// created concurrently by another test binary using the same server.
const rolesSQL = `
SELECT pg_advisory_xact_lock(7220436011526393171);
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'project_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;
      END;
    END IF;
  END LOOP;
  IF NOT (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'project_admin') THEN
    ALTER ROLE project_admin BYPASSRLS;
  END IF;
END
$$;`

// grantsSQL reproduces InsForge's default privileges on public: anon and authenticated get full
// DML on every table (which is why RLS is mandatory), project_admin gets everything.
const grantsSQL = `
GRANT USAGE ON SCHEMA public TO anon, authenticated;
GRANT ALL ON SCHEMA public TO project_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO anon, authenticated;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated;
GRANT ALL ON ALL TABLES IN SCHEMA public TO project_admin;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO project_admin;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO project_admin;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO project_admin;
ALTER DEFAULT PRIVILEGES FOR ROLE project_admin IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE project_admin IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO anon, authenticated;`

// authJWTSQL is InsForge's auth.jwt() (migration 036).
const authJWTSQL = `
CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO PUBLIC;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE
  AS $$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb $$;
GRANT EXECUTE ON FUNCTION auth.jwt() TO anon, authenticated;`

// SQL returns the statements Prepare runs on a database called dbName.
func SQL(dbName string, opts Options) string {
	var b strings.Builder
	b.WriteString(rolesSQL)
	b.WriteString(grantsSQL)
	b.WriteString("\nGRANT CREATE ON DATABASE " + pgx.Identifier{dbName}.Sanitize() + " TO project_admin;")
	if opts.AuthJWT {
		b.WriteString(authJWTSQL)
	}
	b.WriteString("\n")
	return b.String()
}

// Prepare turns db into an InsForge-like database and fails the test on error.
func Prepare(t testing.TB, db *pgtest.Database, opts Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := PrepareURL(ctx, db.URL, db.Name, opts); err != nil {
		t.Fatal(err)
	}
}

// PrepareURL turns the database dbName at url into an InsForge-like database. It is safe to call
// for many databases of the same server concurrently, and again on a prepared database.
func PrepareURL(ctx context.Context, url, dbName string, opts Options) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("insforgetest: connecting to %s: %w", dbName, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, SQL(dbName, opts)); err != nil {
		return fmt.Errorf("insforgetest: preparing %s: %w", dbName, err)
	}
	return nil
}

// NewDatabase creates a fresh pgtest database and prepares it like InsForge's.
func NewDatabase(t testing.TB, opts Options) *pgtest.Database {
	t.Helper()
	db := pgtest.NewDatabase(t)
	Prepare(t, db, opts)
	return db
}

// AsProjectAdmin wraps sql so that it runs as project_admin, which InsForge expects to own every
// object in public (objects created by a superuser are reassigned to it by InsForge).
func AsProjectAdmin(sql string) string {
	return "SET ROLE project_admin;\n" + strings.TrimRight(sql, "; \n\t") + ";\nRESET ROLE;"
}
