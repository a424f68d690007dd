"""From picks to an event catalog: association, network magnitudes, QuakeML/CSV, evaluation."""
