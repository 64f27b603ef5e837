from .srgnn_conv import SRGNNConv

__all__ = ['SRGNNConv']
