"""File attachments: limits (policy), type sniffing, the service behind ChatKit's
AttachmentStore, its HTTP routes, and S3 storage (s3.py)."""
