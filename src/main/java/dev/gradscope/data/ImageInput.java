package dev.gradscope.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;

/**
 * An image file made into what the models trained on MNIST's format take: 28x28 grey pixels, light on dark,
 * scaled to [0, 1] as {@link Dataset#scaledFeatures()} scales the training images.
 *
 * <ol>
 *   <li>Grey: the luma of each pixel, {@code 0.299 R + 0.587 G + 0.114 B} (ITU-R BT.601), in 0..255; a grey
 *       image's own samples as they are. A transparent pixel is laid over white, as a viewer shows it.</li>
 *   <li>Light on dark: MNIST's digits are light strokes on black, a photo of ink is dark strokes on paper. With
 *       {@link Invert#AUTO} the image is inverted ({@code 255 - v}) when the mean of its border (its outermost
 *       rows and columns) is light, above {@link #LIGHT_BORDER} of white.</li>
 *   <li>28x28: any other size is scaled, keeping its aspect ratio, so that its longer side is 28 pixels, each new
 *       pixel the area-weighted mean of the source pixels it covers; the shorter side is centred and padded with
 *       the background, the mean of the border after inversion.</li>
 *   <li>Scaled: {@code v * (1/255)} in float, exactly {@link Mnist#PIXEL_SCALE}, so that a 28x28 grey image of a
 *       data set's test image gives that image's very floats.</li>
 * </ol>
 */
public final class ImageInput {
    /** The side of the square the models take. */
    public static final int SIZE = Mnist.IMAGE_ROWS;

    /** {@link Invert#AUTO} inverts an image whose border's mean, in [0, 1], is above this. */
    public static final double LIGHT_BORDER = 0.5;

    private static final double WHITE = 255;

    /** Whether to make an image's strokes light on dark before the model sees it. */
    public enum Invert {
        /** Invert when the border is light (a mean above {@link #LIGHT_BORDER}). */
        AUTO,
        /** Always invert. */
        YES,
        /** Never invert. */
        NO;

        /** {@code auto}, {@code yes}, {@code no}, in any case. */
        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * The choice named {@code id}, in any case.
         *
         * @throws IllegalArgumentException naming {@code id} and the valid ids
         */
        public static Invert fromId(String id) {
            for (Invert invert : values()) {
                if (invert.id().equals(id.trim().toLowerCase(Locale.ROOT))) {
                    return invert;
                }
            }
            throw new IllegalArgumentException("unknown --invert '" + id + "'; valid: "
                    + Arrays.stream(values()).map(Invert::id).collect(Collectors.joining(", ")));
        }
    }

    /**
     * An image ready for the model, and what was done to it.
     *
     * @param pixels        {@code SIZE * SIZE} floats in [0, 1], row-major
     * @param width         the source's width
     * @param height        the source's height
     * @param scaledWidth   the width it was scaled to before padding ({@code SIZE} when it was not scaled)
     * @param scaledHeight  the height it was scaled to before padding
     * @param borderMean    the mean of the source's border in [0, 1], before any inversion
     * @param inverted      whether it was inverted
     */
    public record Prepared(float[] pixels, int width, int height, int scaledWidth, int scaledHeight,
                           double borderMean, boolean inverted) {
        /** Whether the source was not 28x28 and so was scaled (and padded when it was not square). */
        public boolean scaled() {
            return width != SIZE || height != SIZE;
        }

        /** Whether the scaled image was narrower or lower than 28 and so was padded. */
        public boolean padded() {
            return scaledWidth != SIZE || scaledHeight != SIZE;
        }
    }

    private ImageInput() {
    }

    /**
     * Reads {@code file} with javax.imageio (PNG, JPEG, GIF, BMP and whatever other readers are installed).
     *
     * @throws InvalidDataException naming the file when it is missing, unreadable, not an image or damaged
     */
    public static BufferedImage read(Path file) {
        if (!Files.exists(file)) {
            throw new InvalidDataException(file + ": file not found");
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new InvalidDataException(file + ": not a readable file");
        }
        BufferedImage image;
        try {
            image = ImageIO.read(file.toFile());
        } catch (IOException | RuntimeException e) {
            // Decoders report a damaged file with IOExceptions and, for some damage, runtime exceptions.
            throw new InvalidDataException(file + ": cannot decode the image: " + e.getMessage(), e);
        }
        if (image == null) {
            throw new InvalidDataException(file + ": not an image javax.imageio reads (PNG, JPEG, GIF, BMP: "
                    + String.join(", ", ImageIO.getReaderFormatNames()).toLowerCase(Locale.ROOT) + ")");
        }
        return image;
    }

    /** {@link #prepare(BufferedImage, Invert)} of the image in {@code file}. */
    public static Prepared prepare(Path file, Invert invert) {
        return prepare(read(file), invert);
    }

    /** The image as the models take it (see the class comment for each step). */
    public static Prepared prepare(BufferedImage image, Invert invert) {
        int width = image.getWidth();
        int height = image.getHeight();
        double[] grey = grey(image);
        double border = borderMean(grey, width, height) / WHITE;
        boolean inverted = invert == Invert.YES || (invert == Invert.AUTO && border > LIGHT_BORDER);
        if (inverted) {
            for (int i = 0; i < grey.length; i++) {
                grey[i] = WHITE - grey[i];
            }
        }
        double background = (inverted ? 1 - border : border) * WHITE;
        int longer = Math.max(width, height);
        int scaledWidth = Math.max(1, (int) Math.round((double) width * SIZE / longer));
        int scaledHeight = Math.max(1, (int) Math.round((double) height * SIZE / longer));
        double[] scaled = width == scaledWidth && height == scaledHeight ? grey
                : areaAverage(grey, width, height, scaledWidth, scaledHeight);
        float[] pixels = new float[SIZE * SIZE];
        Arrays.fill(pixels, (float) background * Mnist.PIXEL_SCALE);
        int left = (SIZE - scaledWidth) / 2;
        int top = (SIZE - scaledHeight) / 2;
        for (int y = 0; y < scaledHeight; y++) {
            for (int x = 0; x < scaledWidth; x++) {
                pixels[(top + y) * SIZE + left + x] = (float) scaled[y * scaledWidth + x] * Mnist.PIXEL_SCALE;
            }
        }
        return new Prepared(pixels, width, height, scaledWidth, scaledHeight, border, inverted);
    }

    /**
     * The grey level of every pixel in 0..255, row-major: a grey image's samples (rescaled from their bit depth),
     * otherwise the luma of the sRGB colour; transparent pixels laid over white.
     */
    static double[] grey(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        double[] grey = new double[width * height];
        var model = image.getColorModel();
        Raster raster = image.getRaster();
        // getRGB would take a grey image's samples for linear light and brighten them into sRGB; its samples
        // are what the file holds, as the data sets' bytes are.
        if (model.getColorSpace().getType() == ColorSpace.TYPE_GRAY
                && model.getNumColorComponents() == 1 && !model.isAlphaPremultiplied()) {
            double maxGrey = (1 << model.getComponentSize(0)) - 1;
            double maxAlpha = model.hasAlpha() ? (1 << model.getComponentSize(1)) - 1 : 1;
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    double v = raster.getSample(x, y, 0) * WHITE / maxGrey;
                    double alpha = model.hasAlpha() ? raster.getSample(x, y, 1) / maxAlpha : 1;
                    grey[y * width + x] = overWhite(v, alpha);
                }
            }
            return grey;
        }
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int argb = image.getRGB(x, y);
                double alpha = (argb >>> 24) / WHITE;
                double luma = 0.299 * ((argb >> 16) & 0xFF) + 0.587 * ((argb >> 8) & 0xFF) + 0.114 * (argb & 0xFF);
                grey[y * width + x] = overWhite(luma, alpha);
            }
        }
        return grey;
    }

    private static double overWhite(double value, double alpha) {
        return alpha == 1 ? value : value * alpha + WHITE * (1 - alpha);
    }

    /** The mean of the outermost rows and columns (every pixel once), in the units of {@code grey}. */
    static double borderMean(double[] grey, int width, int height) {
        double sum = 0;
        long count = 0;
        for (int y = 0; y < height; y++) {
            boolean edgeRow = y == 0 || y == height - 1;
            for (int x = 0; x < width; x += edgeRow || x == width - 1 ? 1 : width - 1) {
                sum += grey[y * width + x];
                count++;
            }
        }
        return sum / count;
    }

    /**
     * {@code source} ({@code width x height}) scaled to {@code toWidth x toHeight}: each new pixel is the mean of
     * the source pixels under it, each weighted by the area it shares with the new pixel (a box filter, what
     * {@link java.awt.Image#SCALE_AREA_AVERAGING} does, in double and without its rounding to bytes).
     */
    static double[] areaAverage(double[] source, int width, int height, int toWidth, int toHeight) {
        Span[] columns = spans(width, toWidth);
        Span[] rows = spans(height, toHeight);
        double[] out = new double[toWidth * toHeight];
        for (int ty = 0; ty < toHeight; ty++) {
            Span row = rows[ty];
            for (int tx = 0; tx < toWidth; tx++) {
                Span column = columns[tx];
                double sum = 0;
                double area = 0;
                for (int i = 0; i < row.weights.length; i++) {
                    int y = row.first + i;
                    for (int j = 0; j < column.weights.length; j++) {
                        double w = row.weights[i] * column.weights[j];
                        sum += source[y * width + column.first + j] * w;
                        area += w;
                    }
                }
                out[ty * toWidth + tx] = sum / area;
            }
        }
        return out;
    }

    /** The source pixels {@code first, first + 1, ...} that one new pixel covers, and how much of each. */
    private record Span(int first, double[] weights) {
    }

    /**
     * For each of {@code to} new pixels along one axis, the source pixels it covers out of {@code from}: new
     * pixel {@code t} spans source coordinates {@code [t * from / to, (t + 1) * from / to)}. The shares are
     * counted in units of {@code 1/to} source pixel, in integers, so that equal shares are exactly equal.
     */
    private static Span[] spans(int from, int to) {
        Span[] spans = new Span[to];
        for (int t = 0; t < to; t++) {
            long start = (long) t * from;
            long end = (long) (t + 1) * from;
            int first = (int) (start / to);
            int last = (int) ((end - 1) / to);
            double[] weights = new double[last - first + 1];
            for (int s = first; s <= last; s++) {
                weights[s - first] = Math.min(end, (long) (s + 1) * to) - Math.max(start, (long) s * to);
            }
            spans[t] = new Span(first, weights);
        }
        return spans;
    }
}
