from .transh import TransH

__all__ = ['TransH']
