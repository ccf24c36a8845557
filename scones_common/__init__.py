"""Pieces shared by every deployable part: typed configuration, S3 URIs, logging."""
