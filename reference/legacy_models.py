"""The paper's models written for the original stack: Python 3.7, TensorFlow 1.15, Keras 2.2.4,
keras-genomics 0.1.2.1 (run with the interpreter of ``make reference-venv``, never with the main
venv).

Each builder returns a compiled Keras 2 model in the idiom of the paper's code (spec/paper.md
§2.2, §3.4, §4.3-4.4): Sequential models for the sim / binary standard and RCPS networks, a
functional model with a Lambda RC and a shared nested Sequential for the conjoined ("Siamese")
network, functional BPNets whose residual crops and control-track swaps are Lambda layers, and
keras-genomics' own RevCompConv1D, RevCompConv1DBatchNorm, WeightedSum1D and
DenseAfterRevcompConv1D. RevCompSumPool is not part of keras-genomics: the paper's scripts define
it, and so does this module (same class name, same computation), so the saved files carry the
class names users of the original benchmark have on disk.

Filter counts are parameters so that the fixtures stay small; the layer structure is the
paper's.
"""

import keras
import keras.layers as kl
import tensorflow as tf
from keras import backend as K
from keras.engine import Layer
from keras_genomics.layers import (
    DenseAfterRevcompConv1D,
    RevCompConv1D,
    RevCompConv1DBatchNorm,
    WeightedSum1D,
)


class RevCompSumPool(Layer):
    """The paper's strand merge: (B, L, 2F) -> (B, L, F), x[:, :, :F] + x[:, ::-1, F:][..., ::-1]."""

    def build(self, input_shape):
        self.num_input_chan = input_shape[2]
        super().build(input_shape)

    def call(self, inputs):
        half = int(self.num_input_chan // 2)
        return inputs[:, :, :half] + inputs[:, ::-1, half:][:, :, ::-1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], int(input_shape[2] // 2))


def multinomial_nll(true_counts, logits):
    """Multinomial NLL of one strand's counts (N, L) given logits (N, L), per example."""
    totals = tf.reduce_sum(true_counts, axis=-1)
    dist = tf.compat.v1.distributions.Multinomial(total_count=totals, logits=logits)
    return (-tf.reduce_sum(dist.log_prob(true_counts))
            / tf.cast(tf.shape(true_counts)[0], tf.float32))


class MultichannelMultinomialNLL:
    """BPNet's profile loss: the multinomial NLL summed over the strand channels."""

    def __init__(self, n):
        self.__name__ = "MultichannelMultinomialNLL"
        self.n = n

    def __call__(self, true_counts, logits):
        return tf.add_n([multinomial_nll(true_counts[..., i], logits[..., i])
                         for i in range(self.n)])

    def get_config(self):
        return {"n": self.n}


def _adam():
    return keras.optimizers.Adam(lr=0.001)


def _compile_classifier(model):
    model.compile(optimizer=_adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return model


# ------------------------------------------------------------------------------ sim (§2.2)

def sim_standard(length=200, filters=20, kernel=21, pool=20, stride=20, tasks=3):
    """Conv1D -> BN -> ReLU -> MaxPool -> Flatten -> Dense(3) -> sigmoid."""
    model = keras.models.Sequential()
    model.add(kl.Conv1D(filters, kernel, input_shape=(length, 4)))
    model.add(kl.BatchNormalization())
    model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))
    model.add(kl.Flatten())
    model.add(kl.Dense(tasks))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def sim_rcps(length=200, filters=20, kernel=21, pool=20, stride=20, tasks=3):
    """RevCompConv1D -> RevCompConv1DBatchNorm -> ReLU -> MaxPool -> RevCompSumPool -> Flatten
    -> Dense(3) -> sigmoid (the paper's "RC" model)."""
    model = keras.models.Sequential()
    model.add(RevCompConv1D(filters=filters, kernel_size=kernel, input_shape=(length, 4)))
    model.add(RevCompConv1DBatchNorm())
    model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))
    model.add(RevCompSumPool())
    model.add(kl.Flatten())
    model.add(kl.Dense(tasks))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def sim_rcps_dense_after(length=200, filters=20, kernel=21, pool=20, stride=20, tasks=3):
    """The sim RCPS body read out by keras-genomics' DenseAfterRevcompConv1D (RC-tied dense on the
    pooled 2F-channel map) instead of RevCompSumPool + Flatten + Dense."""
    model = keras.models.Sequential()
    model.add(RevCompConv1D(filters=filters, kernel_size=kernel, input_shape=(length, 4)))
    model.add(RevCompConv1DBatchNorm())
    model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))
    model.add(DenseAfterRevcompConv1D(tasks))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def sim_dense_relu(length=200, filters=20, kernel=21, pool=20, stride=20, tasks=3, hidden=8):
    """Not a paper model: the sim standard network with a hidden Dense -> ReLU before the output,
    the one place where deeplift's genomics default (reveal-cancel after a dense layer) differs
    from the rescale rule; the fixtures' control for that difference."""
    model = keras.models.Sequential()
    model.add(kl.Conv1D(filters, kernel, input_shape=(length, 4)))
    model.add(kl.BatchNormalization())
    model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))
    model.add(kl.Flatten())
    model.add(kl.Dense(hidden, activation="relu"))
    model.add(kl.Dense(tasks))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def sim_siamese(length=200, filters=20, kernel=21, pool=20, stride=20, tasks=3):
    """Conjoined during training ("Siamese"): a shared nested Sequential on x and on a Lambda RC
    of x, logits averaged, then sigmoid."""
    main_input = kl.Input(shape=(length, 4))
    rev_input = kl.Lambda(lambda x: x[:, ::-1, ::-1])(main_input)
    shared = keras.models.Sequential([
        kl.Conv1D(filters, kernel, input_shape=(length, 4)),
        kl.BatchNormalization(),
        kl.Activation("relu"),
        kl.MaxPooling1D(pool_size=pool, strides=stride),
        kl.Flatten(),
        kl.Dense(tasks),
    ], name="shared_layers")
    averaged = kl.average([shared(main_input), shared(rev_input)])
    output = kl.Activation("sigmoid")(averaged)
    return _compile_classifier(keras.models.Model(inputs=main_input, outputs=output))


# ------------------------------------------------------------------------------ binary (§3.4)

BINARY_KERNELS = (15, 14, 14)


def binary_standard(length=1000, filters=16, pool=40, stride=20):
    """3 x [Conv1D -> BN -> ReLU] -> MaxPool(40, 20) -> Flatten -> Dense(1) -> sigmoid."""
    model = keras.models.Sequential()
    for i, kernel in enumerate(BINARY_KERNELS):
        extra = {"input_shape": (length, 4)} if i == 0 else {}
        model.add(kl.Conv1D(filters, kernel, **extra))
        model.add(kl.BatchNormalization())
        model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))
    model.add(kl.Flatten())
    model.add(kl.Dense(1))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def _binary_rc_body(model, length, filters, pool, stride):
    for i, kernel in enumerate(BINARY_KERNELS):
        extra = {"input_shape": (length, 4)} if i == 0 else {}
        model.add(RevCompConv1D(filters=filters, kernel_size=kernel, **extra))
        model.add(RevCompConv1DBatchNorm())
        model.add(kl.Activation("relu"))
    model.add(kl.MaxPooling1D(pool_size=pool, strides=stride))


def binary_rcps(length=1000, filters=16, pool=40, stride=20):
    """RCSumPoolBias (paper RCPS): 3 x [RevCompConv1D -> RC-BN -> ReLU] -> MaxPool ->
    RevCompSumPool -> Flatten -> Dense(1) -> sigmoid."""
    model = keras.models.Sequential()
    _binary_rc_body(model, length, filters, pool, stride)
    model.add(RevCompSumPool())
    model.add(kl.Flatten())
    model.add(kl.Dense(1))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


def binary_rcps_weighted(length=1000, filters=16, pool=40, stride=20):
    """RCWeight: the RCPS body read out by WeightedSum1D(symmetric=False,
    input_is_revcomp_conv=True) and a fixed all-ones Dense(1) (not trainable) -> sigmoid."""
    model = keras.models.Sequential()
    _binary_rc_body(model, length, filters, pool, stride)
    model.add(WeightedSum1D(symmetric=False, input_is_revcomp_conv=True))
    model.add(kl.Dense(1, trainable=False, kernel_initializer="ones"))
    model.add(kl.Activation("sigmoid"))
    return _compile_classifier(model)


# ------------------------------------------------------------------------------ bpnet (§4.3-4.4)

def bpnet_output_length(length, first_kernel, dilated_kernel, n_dilated, profile_kernel):
    out = length - (first_kernel - 1) - (profile_kernel - 1)
    return out - sum((dilated_kernel - 1) * 2 ** i for i in range(1, n_dilated + 1))


def _bpnet_inputs(length, out_len):
    sequence = kl.Input(shape=(length, 4), name="sequence")
    control_logcount = kl.Input(shape=(1,), name="control_logcount")
    control_profile = kl.Input(shape=(out_len, 2), name="control_profile")
    return sequence, control_logcount, control_profile


def _crop_flanks(tensor, out_len, width, channels):
    """The residual centre crop as the paper's code wrote it: a Lambda slicing width // 2 bases
    on the left and the rest on the right, with an explicit output_shape."""
    left = int(0.5 * width)
    return kl.Lambda(lambda x: x[:, left:-(width - left)],
                     output_shape=(out_len, channels))(tensor)


def _bpnet_trunk(conv, sequence, length, filters, channels, first_kernel, dilated_kernel,
                 n_dilated):
    """First conv + residual dilated convs; ``conv(filters, kernel, dilation)`` makes a layer."""
    h = conv(filters, first_kernel, 1)(sequence)
    cur = length - (first_kernel - 1)
    for i in range(1, n_dilated + 1):
        dilation = 2 ** i
        conv_out = conv(filters, dilated_kernel, dilation)(h)
        width = dilation * (dilated_kernel - 1)
        cur -= width
        h = kl.add([_crop_flanks(h, cur, width, channels), conv_out])
    return h


def _compile_bpnet(model):
    model.compile(_adam(), loss=["mse", MultichannelMultinomialNLL(2)], loss_weights=[0.0, 1.0])
    return model


def bpnet_standard(length=1346, filters=8, first_kernel=21, dilated_kernel=3, n_dilated=6,
                   profile_kernel=75):
    """Standard BPNet: dilated residual trunk; profile head Conv1D(2, 75) ++ control ->
    Conv1D(2, 1); count head GAP ++ control log count -> Dense(2). Outputs [counts, profile]."""
    out_len = bpnet_output_length(length, first_kernel, dilated_kernel, n_dilated,
                                  profile_kernel)
    sequence, control_logcount, control_profile = _bpnet_inputs(length, out_len)

    def conv(f, k, d):
        return kl.Conv1D(f, k, dilation_rate=d, padding="valid", activation="relu")

    trunk = _bpnet_trunk(conv, sequence, length, filters, filters, first_kernel,
                         dilated_kernel, n_dilated)
    counts = kl.Dense(2, name="task0_logcount")(
        kl.concatenate([kl.GlobalAvgPool1D()(trunk), control_logcount], axis=-1))
    prebias = kl.Conv1D(2, profile_kernel, padding="valid")(trunk)
    profile = kl.Conv1D(2, 1, name="task0_profile")(
        kl.concatenate([prebias, control_profile], axis=-1))
    model = keras.models.Model(inputs=[sequence, control_logcount, control_profile],
                               outputs=[counts, profile])
    return _compile_bpnet(model)


def bpnet_rcps(length=1346, filters=8, first_kernel=21, dilated_kernel=3, n_dilated=6,
               profile_kernel=75):
    """RCPS BPNet: every conv a RevCompConv1D; the heads concatenate the control before (channel-
    swapped by a Lambda) and after the RC features, so the 1x1 RevCompConv1D heads stay
    equivariant."""
    out_len = bpnet_output_length(length, first_kernel, dilated_kernel, n_dilated,
                                  profile_kernel)
    sequence, control_logcount, control_profile = _bpnet_inputs(length, out_len)

    def conv(f, k, d):
        return RevCompConv1D(filters=f, kernel_size=k, dilation_rate=d, padding="valid",
                             activation="relu")

    trunk = _bpnet_trunk(conv, sequence, length, filters, 2 * filters, first_kernel,
                         dilated_kernel, n_dilated)
    count_features = kl.concatenate([
        kl.Lambda(lambda x: x[:, ::-1])(control_logcount),
        kl.GlobalAvgPool1D()(trunk),
        control_logcount], axis=-1)
    counts = kl.Reshape((-1,), name="task0_logcount")(
        RevCompConv1D(filters=1, kernel_size=1)(kl.Reshape((1, -1))(count_features)))
    prebias = RevCompConv1D(filters=1, kernel_size=profile_kernel, padding="valid")(trunk)
    profile = RevCompConv1D(filters=1, kernel_size=1, name="task0_profile")(
        kl.concatenate([kl.Lambda(lambda x: x[:, :, ::-1])(control_profile), prebias,
                        control_profile], axis=-1))
    model = keras.models.Model(inputs=[sequence, control_logcount, control_profile],
                               outputs=[counts, profile])
    return _compile_bpnet(model)


def pre_sigmoid_model(model):
    """The logits (input of the final sigmoid Activation) of a sim / binary model."""
    return keras.models.Model(model.inputs, model.layers[-1].input)


def session_config():
    """One thread each: repeated runs give bit-identical weights."""
    return tf.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)


def fresh_session():
    K.clear_session()
    K.set_session(tf.Session(config=session_config()))
