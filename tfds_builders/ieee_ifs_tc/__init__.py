"""IEEE IFS-TC Image Forensics Challenge builder."""
