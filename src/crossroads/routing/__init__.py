"""Model -> accounts registry, account selection and health."""
