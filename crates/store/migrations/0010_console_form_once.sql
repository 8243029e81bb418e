-- Console forms whose repetition would do something twice (a new app, a secret rotation: a
-- second rotation revokes the secret a forum is still using) carry a one-time value; a value
-- seen before is refused, so a reload or a double click does nothing again.
CREATE TABLE console_form_once (
    once  text PRIMARY KEY CHECK (length(once) = 64),
    at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_form_once_at ON console_form_once (at);
