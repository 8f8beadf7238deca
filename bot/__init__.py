"""Kabar's front ends (CLI, Discord) and the answer engine."""
