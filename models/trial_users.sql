-- trial_users: people in an active product trial, for the trial nurture
-- programme. One row per person; `email` is the key, the other columns are
-- mapped to Marketo lead fields by the sync's `fields` setting.
--
-- Runs against the docker-compose warehouse (Postgres, schema `app`,
-- seeded by deploy/postgres/init.sql).
SELECT
    lower(u.email)                  AS email,
    u.first_name                    AS first_name,
    u.last_name                     AS last_name,
    a.name                          AS company,
    to_char(a.trial_ends_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS trial_ends_on
FROM app.users AS u
JOIN app.accounts AS a ON a.id = u.account_id
WHERE a.plan = 'trial'
  AND a.trial_ends_at > now()
  AND u.deleted_at IS NULL
  AND u.email_opt_out = false
