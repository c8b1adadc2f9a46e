-- Everyone on a trial who has not opted out of email.
SELECT email, first_name, last_name, company
FROM people
WHERE plan = 'trial' AND opted_out = 0
ORDER BY signed_up_at
