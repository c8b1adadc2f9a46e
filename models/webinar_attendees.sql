-- webinar_attendees: everyone who attended a webinar in the last 90 days,
-- with the latest one they attended. Add-only: people stay on the list for
-- the follow-up programme even after the window passes.
SELECT DISTINCT ON (lower(u.email))
    lower(u.email)  AS email,
    u.first_name    AS first_name,
    e.detail        AS last_webinar
FROM app.events AS e
JOIN app.users AS u ON u.id = e.user_id
WHERE e.kind = 'webinar_attended'
  AND e.occurred_at > now() - interval '90 days'
  AND u.deleted_at IS NULL
ORDER BY lower(u.email), e.occurred_at DESC
