-- The sample warehouse of the docker-compose setup: a SaaS product's
-- accounts, users and events in schema `app`, which the example models in
-- models/ read. The data is generated deterministically (no random()), with
-- dates relative to the day the volume is created, so that every model
-- returns rows.

CREATE SCHEMA app;

CREATE TABLE app.accounts (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    plan          text NOT NULL CHECK (plan IN ('free', 'trial', 'team', 'business')),
    trial_ends_at timestamptz,
    created_at    timestamptz NOT NULL
);

CREATE TABLE app.users (
    id            bigint PRIMARY KEY,
    account_id    bigint NOT NULL REFERENCES app.accounts (id),
    email         text,
    first_name    text,
    last_name     text,
    email_opt_out boolean NOT NULL DEFAULT false,
    last_seen_at  timestamptz,
    signed_up_at  timestamptz NOT NULL,
    deleted_at    timestamptz
);

CREATE TABLE app.events (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES app.users (id),
    kind        text NOT NULL,
    detail      text,
    occurred_at timestamptz NOT NULL
);

-- 120 accounts: every 4th on a trial (half of those already expired), the
-- rest spread over free, team and business.
INSERT INTO app.accounts (id, name, plan, trial_ends_at, created_at)
SELECT a,
       (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Stark', 'Wayne', 'Wonka', 'Tyrell', 'Cyberdyne'])[1 + a % 10]
           || ' ' || (ARRAY['Labs', 'Corp', 'GmbH', 'Ltd', 'Inc', 'SA'])[1 + a % 6] || ' ' || a,
       CASE WHEN a % 4 = 0 THEN 'trial'
            WHEN a % 4 = 1 THEN 'free'
            WHEN a % 4 = 2 THEN 'team'
            ELSE 'business' END,
       CASE WHEN a % 4 = 0 THEN now() + ((a % 8) - 3) * interval '3 days' END,
       now() - (a % 90) * interval '1 day'
FROM generate_series(1, 120) AS a;

-- 600 users, 5 per account. A few rows are what real warehouses hold: an
-- upper-case email, one with spaces, a NULL email, a malformed one, a
-- deleted user and people who opted out.
INSERT INTO app.users (id, account_id, email, first_name, last_name, email_opt_out, last_seen_at, signed_up_at, deleted_at)
SELECT u,
       1 + (u - 1) / 5,
       CASE WHEN u = 16 THEN NULL
            WHEN u = 17 THEN 'not-an-email'
            WHEN u = 18 THEN '  Padded.Person' || u || '@Example.COM  '
            WHEN u % 50 = 0 THEN upper((ARRAY['ada', 'grace', 'alan', 'edsger', 'barbara', 'ken', 'dennis', 'margaret', 'linus', 'guido'])[1 + u % 10]) || '.' || u || '@EXAMPLE.COM'
            ELSE (ARRAY['ada', 'grace', 'alan', 'edsger', 'barbara', 'ken', 'dennis', 'margaret', 'linus', 'guido'])[1 + u % 10] || '.' || u || '@example.com' END,
       initcap((ARRAY['ada', 'grace', 'alan', 'edsger', 'barbara', 'ken', 'dennis', 'margaret', 'linus', 'guido'])[1 + u % 10]),
       (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Thompson', 'Ritchie', 'Hamilton', 'Torvalds', 'van Rossum'])[1 + (u / 10) % 10],
       u % 37 = 0,
       now() - (u % 30) * interval '1 day' - (u % 24) * interval '1 hour',
       now() - (100 + u % 200) * interval '1 day',
       CASE WHEN u % 97 = 0 THEN now() - interval '5 days' END
FROM generate_series(1, 600) AS u;

-- Webinar attendance over the last six months.
INSERT INTO app.events (user_id, kind, detail, occurred_at)
SELECT u,
       'webinar_attended',
       (ARRAY['Intro to reverse ETL', 'Lifecycle marketing 101', 'Scoring leads with SQL', 'Quarterly product update'])[1 + (u + w) % 4],
       now() - ((u * 7 + w * 31) % 180) * interval '1 day'
FROM generate_series(1, 600, 3) AS u, generate_series(1, 2) AS w;
