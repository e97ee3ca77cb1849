"""The pure core: artifact, preprocessing, classification, events and fetch policy.

Imports only the standard library, numpy and Pillow: never boto3, click, torch or an HTTP
server, so the Lambda function's cold start pays for nothing it does not use.
"""
