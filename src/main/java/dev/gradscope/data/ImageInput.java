package dev.gradscope.data;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.DataBuffer;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

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
 *   <li>28x28: an image already in MNIST's format (28x28, light on black: not inverted, its border's mean 0) is
 *       taken as it is. Any other image is framed as {@link Frame} says. {@link Frame#WHOLE} takes a 28x28 image
 *       as it is (after inversion) and scales any other, keeping its aspect ratio, so that its longer side is 28
 *       pixels, each new pixel the area-weighted mean of the source pixels it covers; the shorter side is centred
 *       and padded with the background, the mean of the border after inversion.
 *       {@link Frame#DIGIT} does what MNIST did to its digits: the background is taken off and the ink stretched
 *       to full white, the ink's bounding box is scaled (area-weighted) so that its longer side is 20 pixels, and
 *       it is placed on black so that its centre of mass is the centre of the 28x28 field. The ink is its connected
 *       pieces of at least {@link #MIN_PART} of the heaviest's mass: a speck far from the digit is left out.</li>
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

    /** The side of the box MNIST's digits were scaled into, inside the 28x28 field (LeCun et al.). */
    public static final int DIGIT_BOX = 20;

    /**
     * Of the ink's brightest value above the background, the share a pixel must exceed to count in the ink's bounding
     * box: keeps faint paper texture and compression noise from stretching the box.
     */
    static final double INK_THRESHOLD = 0.1;

    /**
     * Of the heaviest piece of ink's mass, the share another piece must have to be framed with it: a second stroke
     * of a digit is far heavier (a 4's or a 5's is a quarter of the digit or more), a speck of dust far lighter.
     */
    static final double MIN_PART = 0.05;

    /**
     * The least contrast, in grey levels, between the brightest pixel (after any inversion) and the paper for an image
     * to have ink: a level or two of noise on blank paper is not a digit, and stretched to white it would be framed as
     * one.
     */
    static final double MIN_INK_CONTRAST = 0.1 * 255;

    /** Whether some pixel of {@code grey} is lighter than {@code background} by {@link #MIN_INK_CONTRAST}. */
    private static boolean hasInk(double[] grey, double background) {
        return Arrays.stream(grey).max().orElse(0) - background >= MIN_INK_CONTRAST;
    }

    /** How an image is brought to 28x28 (one in MNIST's format already is taken as it is). */
    public enum Frame {
        /** The whole image, scaled to fit and padded with its background (objects that fill the frame). */
        WHOLE,
        /** MNIST's own normalisation of a digit: its ink in a 20x20 box, centred by centre of mass. */
        DIGIT;

        /** {@code whole}, {@code digit}. */
        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * The frame named {@code id}, in any case.
         *
         * @throws IllegalArgumentException naming {@code id} and the valid ids
         */
        public static Frame fromId(String id) {
            return byId(values(), Frame::id, "--frame", id);
        }

        /** The framing that made a data set's images: MNIST's digits were centred by mass, the clothes fill theirs. */
        public static Frame of(DatasetKind kind) {
            return kind == DatasetKind.MNIST ? DIGIT : WHOLE;
        }
    }

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
            return byId(values(), Invert::id, "--invert", id);
        }
    }

    /**
     * The choice of {@code choices} whose id is {@code id}, trimmed, in any case.
     *
     * @throws IllegalArgumentException naming {@code option}, {@code id} and the valid ids
     */
    private static <T> T byId(T[] choices, Function<T, String> idOf, String option, String id) {
        for (T choice : choices) {
            if (idOf.apply(choice).equals(id.trim().toLowerCase(Locale.ROOT))) {
                return choice;
            }
        }
        throw new IllegalArgumentException("unknown " + option + " '" + id + "'; valid: "
                + Arrays.stream(choices).map(idOf).collect(Collectors.joining(", ")));
    }

    /**
     * An image ready for the model, and what was done to it.
     *
     * @param pixels        {@code SIZE * SIZE} floats in [0, 1], row-major
     * @param width         the source's width
     * @param height        the source's height
     * @param scaledWidth   the width it (or, framed as a digit, its ink) was scaled to before padding ({@code SIZE}
     *                      when it was not scaled)
     * @param scaledHeight  the height it (or its ink) was scaled to before padding
     * @param borderMean    the mean of the source's border in [0, 1], before any inversion
     * @param inverted      whether it was inverted
     * @param digitFramed   whether it was framed as MNIST frames a digit ({@link Frame#DIGIT}, on an image that had
     *                      ink and was not in MNIST's format already)
     * @param subsampling   1, or the step a large image file was decoded at ({@link Decoded#subsampling})
     * @param blank         whether it has no ink: no pixel lighter, after any inversion, than its border's mean by
     *                      {@link #MIN_INK_CONTRAST} (a blank sheet, or one with noise; what the model says of it says
     *                      nothing of a digit)
     * @param warnings      what the decoder warned of that changed no pixel (refused otherwise), each with the
     *                      decoder's name; empty for an image given in memory
     */
    public record Prepared(float[] pixels, int width, int height, int scaledWidth, int scaledHeight,
                           double borderMean, boolean inverted, boolean digitFramed, int subsampling,
                           boolean blank, List<String> warnings) {
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
     * An image file as decoded.
     *
     * @param image        its pixels, every {@code subsampling}-th column of every {@code subsampling}-th row
     * @param width        the file's width
     * @param height       the file's height
     * @param subsampling  1, or for a large image the step it was decoded at (see {@link #MAX_DECODED_SIDE})
     */
    public record Decoded(BufferedImage image, int width, int height, int subsampling, List<String> warnings) {
    }

    /**
     * The longest side decoded: a larger image is decoded at every k-th pixel of every k-th row, k the least whole
     * number that brings its longer side to this or less. It ends 28x28 anyway, and a 20000x15000 PNG (a few hundred
     * kilobytes of one colour) would otherwise take gigabytes, bytes then doubles, and end a batch of images with an
     * OutOfMemoryError.
     */
    public static final int MAX_DECODED_SIDE = 2048;

    /**
     * Reads {@code file} with javax.imageio (PNG, JPEG, GIF, BMP and whatever other readers are installed): its
     * size first, then its pixels, subsampled when it is larger than {@link #MAX_DECODED_SIDE}.
     *
     * @throws InvalidDataException naming the file when it is missing, unreadable, not an image or damaged (its
     *                              decoder fails, or only warns)
     */
    public static Decoded read(Path file) {
        if (!Files.exists(file)) {
            throw new InvalidDataException(file + ": file not found");
        }
        if (!Files.isRegularFile(file) || !Files.isReadable(file)) {
            throw new InvalidDataException(file + ": not a readable file");
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
            if (readers == null || !readers.hasNext()) {
                throw new InvalidDataException(file + ": not an image javax.imageio reads (" + readableFormats()
                        + ")");
            }
            ImageReader reader = readers.next();
            try {
                // A damaged file may decode with only warnings (a JPEG cut short: its missing part made up as grey);
                // classifying what the decoder made up would say nothing of the image.
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener((source, warning) -> warnings.add(warning));
                reader.setInput(in, true, true);
                int width = reader.getWidth(0);
                int height = reader.getHeight(0);
                int subsampling = subsampling(width, height);
                ImageReadParam param = reader.getDefaultReadParam();
                if (subsampling > 1) {
                    param.setSourceSubsampling(subsampling, subsampling, 0, 0);
                }
                BufferedImage image = reader.read(0, param);
                String decoder = "the " + reader.getFormatName().toUpperCase(Locale.ROOT) + " decoder warns: ";
                List<String> distinct = warnings.stream().distinct().toList();
                if (distinct.stream().anyMatch(ImageInput::losesData)) {
                    throw new InvalidDataException(file + ": damaged image: " + decoder + String.join("; ", distinct));
                }
                // the others (stray bytes, an invalid colour profile, an oversized palette) change no pixel
                return new Decoded(image, width, height, subsampling,
                        distinct.stream().map(w -> decoder + w).toList());
            } finally {
                reader.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof InvalidDataException invalid) {
                throw invalid;
            }
            // Decoders report a damaged file with IOExceptions and, for some damage, runtime exceptions (some without a
            // message: an EOFException, a file cut short)
            throw new InvalidDataException(file + ": cannot decode the image: " + (e.getMessage() != null
                    ? e.getMessage() : e.getClass().getSimpleName()), e);
        } catch (OutOfMemoryError e) {
            // One image's pixels, even subsampled (a file of many bytes per pixel): what it took is free again, and
            // the other images of the batch are still classified.
            throw new InvalidDataException(file + ": too large to decode in the memory this JVM has ("
                    + e.getMessage() + ")", e);
        }
    }

    /** The step an image of {@code width x height} is decoded at: 1 up to {@link #MAX_DECODED_SIDE}. */
    static int subsampling(int width, int height) {
        int longer = Math.max(width, height);
        return (longer - 1) / MAX_DECODED_SIDE + 1; // the ceiling, without overflowing near Integer.MAX_VALUE
    }

    /**
     * Decoder warnings that mean part of the image was lost and made up (a file cut short, corrupt compressed data):
     * such a file is refused. The others change no pixel and are passed on as notes.
     */
    private static final List<String> DATA_LOST = List.of("truncated", "premature end", "missing eoi",
            "bad huffman");

    private static boolean losesData(String warning) {
        String lower = warning.toLowerCase(Locale.ROOT);
        return DATA_LOST.stream().anyMatch(lower::contains);
    }

    /**
     * The formats javax.imageio reads here, each name once, sorted: it lists each reader under several names, in
     * both cases ({@code jpg, JPG, jpeg, JPEG, ...}).
     */
    static String readableFormats() {
        return "PNG, JPEG, GIF, BMP: " + Arrays.stream(ImageIO.getReaderFormatNames())
                .map(name -> name.toLowerCase(Locale.ROOT)).distinct().sorted().collect(Collectors.joining(", "));
    }

    /**
     * {@link #prepare(BufferedImage, Invert, Frame)} of the image in {@code file}, its size the file's (a large one
     * is decoded subsampled).
     *
     * @throws InvalidDataException naming the file when it cannot be read or has a pixel that is not a number
     */
    public static Prepared prepare(Path file, Invert invert, Frame frame) {
        Decoded decoded = read(file);
        Prepared prepared;
        try {
            prepared = prepare(decoded.image(), invert, frame);
        } catch (InvalidDataException e) {
            throw new InvalidDataException(file + ": " + e.getMessage(), e);
        }
        return new Prepared(prepared.pixels(), decoded.width(), decoded.height(), prepared.scaledWidth(),
                prepared.scaledHeight(), prepared.borderMean(), prepared.inverted(), prepared.digitFramed(),
                decoded.subsampling(), prepared.blank(), decoded.warnings());
    }

    /** {@link #prepare(BufferedImage, Invert, Frame)} with the whole image scaled to fit, {@link Frame#WHOLE}. */
    public static Prepared prepare(BufferedImage image, Invert invert) {
        return prepare(image, invert, Frame.WHOLE);
    }

    /**
     * The image as the models take it (see the class comment for each step).
     *
     * @throws InvalidDataException naming a pixel whose level is not a finite number
     */
    public static Prepared prepare(BufferedImage image, Invert invert, Frame frame) {
        int width = image.getWidth();
        int height = image.getHeight();
        double[] grey = grey(image);
        double borderGrey = borderMean(grey, width, height);
        double border = borderGrey / WHITE;
        boolean inverted = invert == Invert.YES || (invert == Invert.AUTO && border > LIGHT_BORDER);
        if (inverted) {
            for (int i = 0; i < grey.length; i++) {
                grey[i] = WHITE - grey[i];
            }
        }
        // in grey levels, as the pixels are: an even paper then comes out exactly 0 when taken off
        double background = inverted ? WHITE - borderGrey : borderGrey;
        // A 28x28 image on a black border is in MNIST's own format, framed already (its ink may touch the edge); a
        // 28x28 photo of ink on paper still has its paper to take off and its ink to frame.
        boolean mnistFormat = width == SIZE && height == SIZE && !inverted && mostlyBlackBorder(grey);
        if (frame == Frame.DIGIT && !mnistFormat) {
            Prepared digit = frameDigit(grey, width, height, background, border, inverted);
            if (digit != null) {
                return digit;
            }
            // no ink to frame (a blank image): scaled whole, as it is
        }
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
        boolean blank = !hasInk(grey, background);
        return new Prepared(pixels, width, height, scaledWidth, scaledHeight, border, inverted, false, 1, blank,
                List.of());
    }

    /**
     * MNIST's framing of a digit (light on dark in {@code grey}, 0..255): the ink above {@code background}, less the
     * specks {@link #digitComponents} leaves out, stretched so that its brightest pixel is white, cut to its bounding
     * box, scaled so that the box's longer side is {@link #DIGIT_BOX}, and placed on black with its centre of mass
     * at the centre of the field (moved by whole pixels, as MNIST's were). Null when no pixel is brighter than the
     * background.
     */
    private static Prepared frameDigit(double[] grey, int width, int height, double background, double border,
                                       boolean inverted) {
        if (!hasInk(grey, background)) {
            return null;
        }
        double brightest = Arrays.stream(grey).max().orElse(0);
        double[] ink = new double[grey.length];
        boolean[] mask = new boolean[grey.length];
        double stretch = WHITE / (brightest - background);
        for (int i = 0; i < grey.length; i++) {
            ink[i] = Math.max(0, grey[i] - background);
            mask[i] = ink[i] * stretch > INK_THRESHOLD * WHITE;
        }
        boolean[] kept = digitComponents(mask, ink, width, height);
        // What is left out is not ink: off the crop, out of the centre of mass, and not the white the rest is
        // stretched to.
        double keptBrightest = 0;
        int left = width;
        int right = -1;
        int top = height;
        int bottom = -1;
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int i = y * width + x;
                if (mask[i] && !kept[i]) {
                    ink[i] = 0;
                } else if (kept[i]) {
                    keptBrightest = Math.max(keptBrightest, ink[i]);
                    left = Math.min(left, x);
                    right = Math.max(right, x);
                    top = Math.min(top, y);
                    bottom = Math.max(bottom, y);
                }
            }
        }
        stretch = WHITE / keptBrightest;
        for (int i = 0; i < ink.length; i++) {
            ink[i] *= stretch;
        }
        int boxWidth = right - left + 1;
        int boxHeight = bottom - top + 1;
        double[] box = new double[boxWidth * boxHeight];
        for (int y = 0; y < boxHeight; y++) {
            System.arraycopy(ink, (top + y) * width + left, box, y * boxWidth, boxWidth);
        }
        int longer = Math.max(boxWidth, boxHeight);
        int scaledWidth = Math.max(1, (int) Math.round((double) boxWidth * DIGIT_BOX / longer));
        int scaledHeight = Math.max(1, (int) Math.round((double) boxHeight * DIGIT_BOX / longer));
        double[] scaled = areaAverage(box, boxWidth, boxHeight, scaledWidth, scaledHeight);
        // The centre of mass in pixel indices goes to pixel (14, 14): MNIST's training images have theirs within
        // half a pixel of it (measured: every one of the first 2000 between 13.5 and 14.5 on both axes).
        double mass = 0;
        double sumX = 0;
        double sumY = 0;
        for (int y = 0; y < scaledHeight; y++) {
            for (int x = 0; x < scaledWidth; x++) {
                double v = scaled[y * scaledWidth + x];
                mass += v;
                sumX += v * x;
                sumY += v * y;
            }
        }
        int shiftX = (int) Math.round(SIZE / 2 - sumX / mass);
        int shiftY = (int) Math.round(SIZE / 2 - sumY / mass);
        float[] pixels = new float[SIZE * SIZE];
        for (int y = 0; y < scaledHeight; y++) {
            for (int x = 0; x < scaledWidth; x++) {
                int tx = x + shiftX;
                int ty = y + shiftY;
                // a lopsided digit may reach past the field, as it could in MNIST's own framing: that ink is cut
                if (tx >= 0 && tx < SIZE && ty >= 0 && ty < SIZE) {
                    pixels[ty * SIZE + tx] = (float) scaled[y * scaledWidth + x] * Mnist.PIXEL_SCALE;
                }
            }
        }
        return new Prepared(pixels, width, height, scaledWidth, scaledHeight, border, inverted, true, 1, false,
                List.of());
    }

    /**
     * Which ink pixels are the digit's: the connected components of {@code mask} (8-connectivity: a stroke drawn
     * diagonally is one piece) whose mass, the sum of {@code ink} over them, is at least {@link #MIN_PART} of the
     * heaviest's. A digit written in two strokes (a 4, a 5) keeps both; a speck of dust or a dot of noise, far from
     * the digit, is left out, where it would have stretched the bounding box. At least one pixel is kept when any is
     * in the mask.
     */
    static boolean[] digitComponents(boolean[] mask, double[] ink, int width, int height) {
        int[] component = new int[mask.length]; // 0: not labelled yet; labels count from 1
        List<Double> masses = new ArrayList<>();
        masses.add(0.0);
        int[] queue = new int[mask.length];
        for (int start = 0; start < mask.length; start++) {
            if (!mask[start] || component[start] != 0) {
                continue;
            }
            int label = masses.size();
            double mass = 0;
            int head = 0;
            int tail = 0;
            queue[tail++] = start;
            component[start] = label;
            while (head < tail) {
                int i = queue[head++];
                mass += ink[i];
                int x = i % width;
                int y = i / width;
                for (int ny = Math.max(0, y - 1); ny <= Math.min(height - 1, y + 1); ny++) {
                    for (int nx = Math.max(0, x - 1); nx <= Math.min(width - 1, x + 1); nx++) {
                        int n = ny * width + nx;
                        if (mask[n] && component[n] == 0) {
                            component[n] = label;
                            queue[tail++] = n;
                        }
                    }
                }
            }
            masses.add(mass);
        }
        double heaviest = masses.stream().mapToDouble(Double::doubleValue).max().orElse(0);
        boolean[] kept = new boolean[mask.length];
        for (int i = 0; i < mask.length; i++) {
            kept[i] = component[i] != 0 && masses.get(component[i]) >= MIN_PART * heaviest;
        }
        return kept;
    }

    /**
     * The grey level of every pixel in 0..255, row-major: a grey image's samples (rescaled from their bit depth),
     * otherwise the luma of the sRGB colour; transparent pixels laid over white.
     *
     * @throws InvalidDataException naming the first pixel whose level is not a finite number (a float image's NaN or
     *                              infinity)
     */
    static double[] grey(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        double[] grey = new double[width * height];
        var model = image.getColorModel();
        Raster raster = image.getRaster();
        int type = raster.getTransferType();
        // getRGB would take a grey image's samples for linear light and brighten them into sRGB; its samples
        // are what the file holds, as the data sets' bytes are.
        if (model.getColorSpace().getType() == ColorSpace.TYPE_GRAY
                && model.getNumColorComponents() == 1 && !model.isAlphaPremultiplied()) {
            boolean alpha = model.hasAlpha();
            if (type == DataBuffer.TYPE_BYTE || type == DataBuffer.TYPE_USHORT || type == DataBuffer.TYPE_INT) {
                // Unsigned integers of the component's bit depth. In long: for 32 bits, 1 << 32 is 1 in int (the
                // shift is taken mod 32) and ColorModel's own normalisation divides by 0; a 32-bit sample above
                // 2^31 reads as a negative int.
                double maxGrey = (1L << model.getComponentSize(0)) - 1;
                double maxAlpha = alpha ? (1L << model.getComponentSize(1)) - 1 : 1;
                for (int y = 0; y < height; y++) {
                    for (int x = 0; x < width; x++) {
                        double v = Integer.toUnsignedLong(raster.getSample(x, y, 0)) * WHITE / maxGrey;
                        double a = alpha ? Integer.toUnsignedLong(raster.getSample(x, y, 1)) / maxAlpha : 1;
                        grey[y * width + x] = overWhite(v, a);
                    }
                }
                return grey;
            }
            if (type == DataBuffer.TYPE_SHORT && !alpha) {
                // Signed 16-bit levels from -32768 (black) to 32767 (white): the colour model would clip every
                // negative level to black, and a file's levels may all be negative.
                for (int y = 0; y < height; y++) {
                    for (int x = 0; x < width; x++) {
                        grey[y * width + x] = (raster.getSample(x, y, 0) + 32768.0) * WHITE / 65535.0;
                    }
                }
                return grey;
            }
            // Signed shorts with alpha, floats and doubles: the colour model's components in [0, 1] (for floats, what
            // the file holds: getSample would truncate them to 0 or 1).
            Object pixel = null;
            float[] components = null;
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    pixel = raster.getDataElements(x, y, pixel);
                    components = model.getNormalizedComponents(pixel, components, 0);
                    double v = finite(components[0], x, y) * WHITE;
                    double a = alpha ? finite(components[1], x, y) : 1;
                    // a float file may hold levels outside [0, 1]: the nearest level the model knows
                    grey[y * width + x] = overWhite(Math.min(WHITE, Math.max(0, v)), Math.min(1, Math.max(0, a)));
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

    /** {@code value}, refused when it is NaN or infinite: a damaged or unscaled float image. */
    private static double finite(float value, int x, int y) {
        if (!Float.isFinite(value)) {
            throw new InvalidDataException("pixel (" + x + ", " + y + ") is " + value + ", not a grey level");
        }
        return value;
    }

    private static double overWhite(double value, double alpha) {
        return alpha == 1 ? value : value * alpha + WHITE * (1 - alpha);
    }

    /**
     * Whether most of a 28x28 image's outermost rows and columns are exactly 0: a data set's own image, whose ink may
     * touch its edge (107 of MNIST's 10,000 test images) but whose border is black otherwise.
     */
    private static boolean mostlyBlackBorder(double[] grey) {
        int black = 0;
        int count = 0;
        for (int y = 0; y < SIZE; y++) {
            boolean edgeRow = y == 0 || y == SIZE - 1;
            for (int x = 0; x < SIZE; x += edgeRow || x == SIZE - 1 ? 1 : SIZE - 1) {
                black += grey[y * SIZE + x] == 0 ? 1 : 0;
                count++;
            }
        }
        return black * 2 > count;
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
