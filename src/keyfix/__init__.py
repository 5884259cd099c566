"""keyfix: finds and repairs the missing KMS permission behind failed Auto Scaling, EC2 and EBS operations."""

__version__ = "0.1.0"
