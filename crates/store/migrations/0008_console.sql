-- The operator console: operator accounts with a second factor, their sessions, failed logins
-- (for throttling), and the record of every reconciliation (its result and solvency, for the
-- console's overview and its history chart).

CREATE TABLE operators (
    name             text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_.-]{0,31}$'),
    role             text NOT NULL CHECK (role IN ('admin', 'viewer')),
    -- Argon2id, PHC string format
    password_hash    text NOT NULL,
    -- the TOTP secret, sealed with the master key (aad 'operator/<name>'); NULL until enrolled
    totp_secret      bytea,
    -- the secret shown on the enrolment page, until the operator confirms it with a code
    totp_pending     bytea,
    -- the last 30-second step whose code was accepted: a code is good once
    totp_last_step   bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text NOT NULL,
    password_set_at  timestamptz NOT NULL DEFAULT now()
);

-- A session is a random token in the operator's cookie; only its SHA-256 is stored.
-- stage 'password': the password was right, the code is still due; 'full': logged in.
CREATE TABLE operator_sessions (
    id_hash     bytea PRIMARY KEY,
    operator    text NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
    stage       text NOT NULL CHECK (stage IN ('password', 'full')),
    csrf        text NOT NULL,
    address     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator);

CREATE TABLE operator_login_failures (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    -- the name that was tried (known or not)
    operator  text NOT NULL,
    address   text NOT NULL
);
CREATE INDEX operator_login_failures_operator ON operator_login_failures (operator, at);
CREATE INDEX operator_login_failures_address ON operator_login_failures (address, at);

CREATE TABLE reconcile_runs (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    -- 'all', or the app's id
    scope     text NOT NULL,
    actor     text NOT NULL,
    clean     boolean,
    findings  integer,
    -- why it could not run
    error     text,
    -- [{asset, owed, held}] in base units, as decimal strings
    solvency  jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX reconcile_runs_at ON reconcile_runs (at);

-- the console's audit trail by operator (only operators' rows are indexed)
CREATE INDEX audit_log_operator ON audit_log (actor, id) WHERE actor LIKE 'operator:%';
