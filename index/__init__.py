"""Kabar's indexing side: load, clean, chunk, embed, store, retrieve."""
