"""Names of the pipeline's Beam metrics, stated once: the stages count under them, the summary reads them."""


NAMESPACE = 'site_stats'

MESSAGES_READ = 'messages_read'
MESSAGES_PARSED = 'messages_parsed'
MESSAGES_VALID = 'messages_valid'
MESSAGES_COUNTED = 'messages_counted'
DEAD_LETTERED_PREFIX = 'dead_lettered_'  # + stage
CASSANDRA_WRITES = 'cassandra_writes'  # UPDATE statements, one per key per bundle
CASSANDRA_REQUESTS = 'cassandra_requests'  # round trips: single UPDATEs and counter batches
CASSANDRA_WRITE_BATCH = 'cassandra_writes_per_bundle'
CASSANDRA_BUNDLE_WRITE_MS = 'cassandra_bundle_write_ms'
DEAD_LETTERS_PUBLISHED = 'dead_letters_published'
SKIPPED_OTHER_DATES = 'skipped_other_dates'  # valid, but outside --dates
RECONCILE_KEYS_CHECKED = 'reconcile_keys_checked'
RECONCILE_KEYS_CORRECTED = 'reconcile_keys_corrected'
RECONCILE_VIEWS_CORRECTED = 'reconcile_views_corrected'
RECONCILE_CLICKS_CORRECTED = 'reconcile_clicks_corrected'
DATE_TOTAL_PREFIX = 'date_total_'


def date_total(measure: str, day_iso: str) -> str:
  return f'{DATE_TOTAL_PREFIX}{measure}_{day_iso}'


def dead_lettered(stage: str) -> str:
  return DEAD_LETTERED_PREFIX + stage
