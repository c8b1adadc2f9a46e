-- churn_risk: users of paying accounts who have not been seen for 14 days,
-- for the customer success win-back list. Removing someone from the list
-- when they come back is the point, so the sync runs in mirror mode.
SELECT
    lower(u.email)      AS email,
    u.first_name        AS first_name,
    a.name              AS company,
    a.plan              AS plan,
    date_part('day', now() - u.last_seen_at)::int AS days_inactive
FROM app.users AS u
JOIN app.accounts AS a ON a.id = u.account_id
WHERE a.plan IN ('team', 'business')
  AND u.last_seen_at < now() - interval '14 days'
  AND u.deleted_at IS NULL
  AND u.email_opt_out = false
